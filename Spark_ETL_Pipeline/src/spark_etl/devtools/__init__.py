"""Development helpers outside a run: JupyterLab on the notebooks, a standalone cluster on this machine,
and the loopback ports they listen on."""
