"""Stage 9, presenting: the sentences the harness says, the HTML/JSON report, JUnit XML."""
