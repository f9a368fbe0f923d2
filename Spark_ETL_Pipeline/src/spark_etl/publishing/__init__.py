"""What a run publishes: its own folder and the published files, the HTML reports and what the notebooks
display, the stage metrics the summary is made of, and the PostgreSQL serving table."""
