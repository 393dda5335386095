"""Ray-free readers of sweep results, their statistics and the HTML report."""
