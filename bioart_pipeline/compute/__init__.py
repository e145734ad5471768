"""GPU jobs (training, XY plot, captioning): their placement, the entrypoint that runs one,
and running them elsewhere: encrypted transfer, the store, the remote worker."""
