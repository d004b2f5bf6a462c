"""memory-router: an MCP server with durable memory and one door to every model."""

__version__ = "0.1.0"
