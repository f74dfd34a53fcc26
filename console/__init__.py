"""The operator console: ``/admin`` on the web process, server-rendered HTML with inline SVG charts.

``console.app`` builds it from its dependencies (the composition root passes them in);
``console.auth`` signs people in (one-time links or Entra), keeps sessions and CSRF tokens, and
sets the security headers; ``console.pages`` renders; ``console.charts`` draws; ``console.privacy``
decides what is shown of people and questions.
"""
