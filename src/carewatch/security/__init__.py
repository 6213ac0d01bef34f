"""Who may call the API and what they may see: tokens, roles and scopes, limits on hostile input."""
