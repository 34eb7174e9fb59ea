"""Benchmarks (`make bench`): each compares SaoY with a baseline in the same run."""
