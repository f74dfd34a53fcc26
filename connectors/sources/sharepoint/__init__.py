"""SharePoint Online document libraries and OneDrive for Business, through Microsoft Graph."""
