"""Image bytes in, model input out: header checks before any decoding, decode, letterbox."""
