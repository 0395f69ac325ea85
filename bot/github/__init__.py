"""GitHub: the REST client with bounded retries, App authentication, and one function per
REST call (``rest``). Knows nothing of the analysis."""
