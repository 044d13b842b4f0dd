"""Reports: read-only selectors, pages and API for funnels, sources, cycle time, CAC and rep performance."""
