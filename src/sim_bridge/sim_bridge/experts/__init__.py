"""Scripted experts that solve the tasks, and expert trajectory shaping (perturbations)."""
