"""What Confluence Cloud and Jira Cloud sources share: one HTTP client (API token auth, paging,
throttling) and one mapping of Atlassian accounts and groups to ACL tokens."""
