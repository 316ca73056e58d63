"""The xAPI LRS's HTTP face: one plain-ASGI entry (app.XapiApp) and a module per resource."""
