"""songshard: the Beam graph, its options, the entry point and the command line."""
