"""Jobs: what a user asks for (an image, a folder, a clip, a training run, a dream), declared once."""
