"""preprocessed_images: decode, flatten onto the background, bucket, filter; content-addressed."""
