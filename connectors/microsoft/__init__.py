"""What every Microsoft connector shares: the Entra app's settings and credential, the Microsoft
Graph client with its app-only tokens, the app's permissions as ``chatops doctor`` checks them,
and SharePoint REST's conventions. Used by the Entra identity provider and the console's sign-in
(connectors/identity/), the SharePoint source and the entra_group action."""
