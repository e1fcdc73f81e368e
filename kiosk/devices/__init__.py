"""Hardware: RFID readers and tag data models, patron card readers, printer, sorter, simulated devices."""
