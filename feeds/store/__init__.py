"""The only SQL about market data: schema, buckets, window totals, status queries."""
