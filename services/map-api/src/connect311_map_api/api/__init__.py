"""HTTP edge: FastAPI routers, one module per area."""
