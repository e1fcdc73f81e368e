"""The domain and the workflows: pure Python, driven by events, with time injected.

What the screens call (each module's docstring has the details):

* `session.PatronSession.handle(event) -> SessionState` - login, PIN, checkout, account, receipt, idle.
* `returns.ReturnStation.handle_tags/handle_barcode -> ReturnState` - returns without login.
* `bookdrop.BookDrop.handle_tags -> BookDropState` - the unattended book drop.
* `worker.CoreWorker.submit(fn, *args, on_done=, on_error=)` - run any of the above off the UI thread.
* `receipt.Receipt` - receipts and hold slips as data; `masking.mask_card` for every card number shown.
"""
