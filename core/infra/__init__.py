"""Infrastructure under the services: the cache, telemetry and the market-data providers."""
