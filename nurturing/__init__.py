"""Nurturing: sequences, steps, enrollments, e-mail templates, sending and unsubscribe."""
