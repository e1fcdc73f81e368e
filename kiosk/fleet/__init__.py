"""Running many kiosks as a fleet: Prometheus metrics, alerts that reach staff, the technician's
status page and support bundles. See docs/fleet.md.

`attach(services)` (kiosk.fleet.runtime) wires it to a kiosk built by the composition root;
`raise_alert(kind, summary, **labels)` (kiosk.fleet.alerts) is the one call for urgent events.
"""
