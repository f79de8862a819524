"""Foundations: images, files, the runtime, model files, the backbone, losses, colour, flow, sound, errors."""
