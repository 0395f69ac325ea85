"""The GitHub App: the aiohttp webhook server, the routers per event family, the job queue
and worker pool, the server configuration, and the flows that perform reviews on GitHub."""
