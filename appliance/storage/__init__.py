"""The storage layer: where the appliance keeps its rows and files, embedded or scaled out (docs/scale-out.md)."""
