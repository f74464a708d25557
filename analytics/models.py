"""Analytics has no models yet."""
