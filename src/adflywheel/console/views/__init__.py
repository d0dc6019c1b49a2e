"""View building per console page: queries and services in, plain frozen dataclasses out.

Kept apart from the routers and templates so what a page shows is testable without HTML."""
