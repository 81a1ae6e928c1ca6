import dask

parts = [dask.delayed(sum)(range(n)) for n in (10, 20, 30)]
dask.delayed(sum)(parts).visualize("graph.png")
