"""TFRecord schema and the tf.data reader."""
