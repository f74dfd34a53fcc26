"""What Confluence Cloud and Jira Cloud sources share beyond the Atlassian clients
(``connectors/atlassian/``): the source base (opening, the site's groups, dates for CQL and JQL)
and intersecting grants."""
