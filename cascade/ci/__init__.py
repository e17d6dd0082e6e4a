"""The GitHub Action's side: the event that started the job, the job itself, and what it
publishes."""
