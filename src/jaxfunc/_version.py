"""The package version, in one place: hatch reads it when building, and ``jaxfunc.__version__``
re-exports it (no installed metadata needed, so a source checkout reports it too)."""

__version__ = "0.1.0"
