"""TFRecord schema and the tf.data reader."""

from keras_depth.data.reader import count_records, make_dataset, make_eval_dataset

__all__ = ["count_records", "make_dataset", "make_eval_dataset"]
