// boxoffice: small behaviours on top of HTMX. Served from the app itself (the CSP allows only
// the app's own scripts).
