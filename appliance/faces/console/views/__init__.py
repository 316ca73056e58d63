"""The console's pages, one module per noun; each handler calls the same service function as the API."""
