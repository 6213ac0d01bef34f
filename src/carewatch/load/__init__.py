"""`carewatch api-load`: the portal queries of issue 13 under load, with the API's and PostgreSQL's CPU."""
