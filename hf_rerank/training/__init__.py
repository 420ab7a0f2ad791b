"""Trainers, their arguments and callbacks."""
