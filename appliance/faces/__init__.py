"""How the appliance is reached: the HTTP API, the player and its browser runtime, the admin console, the CLI."""
