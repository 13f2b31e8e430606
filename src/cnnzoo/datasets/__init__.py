"""Datasets: readers for the official formats, the data cache, and downloads with checksums."""
