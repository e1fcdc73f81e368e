"""Kivy screens: thin views over the core's workflow state."""
