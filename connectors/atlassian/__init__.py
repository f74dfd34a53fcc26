"""What every Atlassian Cloud connector shares: the HTTP client of a site (API token auth, paging,
throttling, downloads), accounts and groups as ACL tokens, the organization's directory, and the
Atlassian Document Format. Used by the Confluence and Jira sources and the jira action."""
