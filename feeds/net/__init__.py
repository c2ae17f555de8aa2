"""The wire: backoff, the websocket connector and the HTTP client every venue uses."""
