"""The panel (contract §5): server-rendered pages under ``/panel``. ``panel.app`` builds
the Starlette application that :func:`pushcamp.api.app.create_app` mounts; ``routes``
holds the pages, ``security`` the session cookie and CSRF checks, ``charts`` the SVG
charts, ``render`` the templates."""
