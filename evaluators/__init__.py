"""Built-in evaluator plugins; registered through the ``gpengine.evaluators`` entry points."""
