"""The domain and the workflows: pure Python, driven by events, with time injected."""
