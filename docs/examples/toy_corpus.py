"""A worked example: the ``toy`` corpus (one module, one ``@register_corpus``'d recipe).

tests/test_docs_extend.py imports this file (which registers the recipe), lays out a toy corpus
of generated audio and checks what the recipe takes and rejects, its classes and its plan, as
docs/extend/corpus.md shows.
"""
import os

from emofuse.catalog.corpora import CorpusRecipe, Entry, EvaluationPlan, Fold, register_corpus


@register_corpus
class ToyCorpus(CorpusRecipe):
    name, naming_hint = "toy", "<speaker>/<emotion>_<take>.wav"
    classes = ("neutral", "happy", "sad")              # the class order of models trained on it

    def discover(self, source, selection=None):       # yields one Entry per item (or rejected file)
        for spk in sorted(os.listdir(source)):
            for f in sorted(os.listdir(os.path.join(source, spk))):
                path, emotion = os.path.join(source, spk, f), f.split("_")[0]
                ok = f.endswith(".wav") and emotion in self.classes
                yield Entry(path, {"corpus": self.name, "speaker": spk, "emotion": emotion} if ok else {},
                            None if ok else f"{f!r} is not named {self.naming_hint}")

    def evaluation_plan(self, media):                 # None: a generic 5-fold speaker plan
        return EvaluationPlan((Fold(0, train=("s1", "s2"), val=("s3",), test=("s4",)),))
