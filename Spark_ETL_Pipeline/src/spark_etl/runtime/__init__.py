"""Where a run executes: the kernel and the Spark JVM it shares across the stages, the Spark settings and
JVM options, the class archive, and the kernel's lifetime."""
