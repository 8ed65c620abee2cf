package eval

import (
	"strings"

	"github.com/pkg/errors"
)

// The builders below follow lm-evaluation-harness at commit 4d21ab6 (the version LLM-Pruner
// vendors), zero-shot: the context is the task's doc_to_text, each choice is scored as the
// continuation " " + choice (target delimiter " "), and no description or few-shot examples are
// prepended.

// multipleChoice builds lm-eval's MultipleChoiceTask requests: one (query, " "+choice) per choice.
func multipleChoice(query string, choices []string, gold int) (Doc, error) {
	if len(choices) == 0 {
		return Doc{}, errors.New("document has no choices")
	}
	if err := checkGold(gold, len(choices)); err != nil {
		return Doc{}, err
	}
	reqs := make([]Request, len(choices))
	for i, c := range choices {
		reqs[i] = Request{Context: query, Continuation: " " + c}
	}
	return Doc{Requests: reqs, Choices: choices, Gold: gold}, nil
}

// parseBoolQ: SuperGLUE BoolQ. Context "{passage}\nQuestion: {question}?\nAnswer:", continuations
// " no" and " yes"; lm-eval predicts "yes" iff ll(" yes") > ll(" no"), which equals the first-max
// argmax over [no, yes]. Only acc is reported.
func parseBoolQ(r record) (Doc, error) {
	f, err := r.strFields("passage", "question")
	if err != nil {
		return Doc{}, err
	}
	passage, question := f[0], f[1]
	label, err := r.integer("label")
	if err != nil {
		return Doc{}, err
	}
	if err := checkGold(label, 2); err != nil {
		return Doc{}, err
	}
	ctx := passage + "\nQuestion: " + question + "?\nAnswer:"
	return Doc{
		Requests: []Request{{Context: ctx, Continuation: " no"}, {Context: ctx, Continuation: " yes"}},
		Gold:     label,
	}, nil
}

// parsePIQA: context "Question: {goal}\nAnswer:", choices sol1 and sol2.
func parsePIQA(r record) (Doc, error) {
	f, err := r.strFields("goal", "sol1", "sol2")
	if err != nil {
		return Doc{}, err
	}
	label, err := r.integer("label")
	if err != nil {
		return Doc{}, err
	}
	return multipleChoice("Question: "+f[0]+"\nAnswer:", f[1:], label)
}

// parseHellaSwag: query = preprocess(activity_label + ": " + ctx_a + " " + capitalize(ctx_b)),
// choices = preprocess(ending) for each ending.
func parseHellaSwag(r record) (Doc, error) {
	f, err := r.strFields("activity_label", "ctx_a", "ctx_b")
	if err != nil {
		return Doc{}, err
	}
	activity, ctxA, ctxB := f[0], f[1], f[2]
	endings, err := r.strs("endings")
	if err != nil {
		return Doc{}, err
	}
	label, err := r.integer("label")
	if err != nil {
		return Doc{}, err
	}
	query := hellaswagPreprocess(activity + ": " + ctxA + " " + pyCapitalize(ctxB))
	choices := make([]string, len(endings))
	for i, e := range endings {
		choices[i] = hellaswagPreprocess(e)
	}
	return multipleChoice(query, choices, label)
}

// parseWinoGrande: lm-eval's partial evaluation. The sentence is split at its "_": for each option
// the context is the text before "_" followed by the option, and the continuation is " " + the
// stripped text after "_" — the same continuation for both options. Only acc is reported.
func parseWinoGrande(r record) (Doc, error) {
	f, err := r.strFields("sentence", "option1", "option2")
	if err != nil {
		return Doc{}, err
	}
	sentence, opt1, opt2 := f[0], f[1], f[2]
	answer, err := r.integer("answer")
	if err != nil {
		return Doc{}, err
	}
	if answer != 1 && answer != 2 {
		return Doc{}, errors.Errorf("field \"answer\" must be \"1\" or \"2\", got %d", answer)
	}
	blank := strings.Index(sentence, "_")
	if blank < 0 {
		return Doc{}, errors.Errorf("sentence %q has no \"_\" blank", sentence)
	}
	target := " " + pyStrip(sentence[blank+1:])
	return Doc{
		Requests: []Request{
			{Context: sentence[:blank] + opt1, Continuation: target},
			{Context: sentence[:blank] + opt2, Continuation: target},
		},
		Gold: answer - 1,
	}, nil
}

// parseARC: query "Question: {question}\nAnswer:"; numeric answer keys "1".."5" mean "A".."E".
func parseARC(r record) (Doc, error) {
	question, choices, key, err := r.keyedChoices("question")
	if err != nil {
		return Doc{}, err
	}
	if k := strings.Index("12345", key); len(key) == 1 && k >= 0 {
		key = string("ABCDE"[k])
	}
	gold := strings.Index("ABCDE", key)
	if len(key) != 1 || gold < 0 {
		return Doc{}, errors.Errorf("answerKey %q is not one of A-E or 1-5", key)
	}
	return multipleChoice("Question: "+question+"\nAnswer:", choices, gold)
}

// parseOpenBookQA: the query is question_stem itself; answerKey (stripped) is one of "A".."D".
func parseOpenBookQA(r record) (Doc, error) {
	stem, choices, key, err := r.keyedChoices("question_stem")
	if err != nil {
		return Doc{}, err
	}
	key = pyStrip(key)
	gold := strings.Index("ABCD", key)
	if len(key) != 1 || gold < 0 {
		return Doc{}, errors.Errorf("answerKey %q is not one of A-D", key)
	}
	return multipleChoice(stem, choices, gold)
}

// keyedChoices reads the fields ARC and OpenBookQA share: the question (named by questionField),
// the choice texts and the answer key.
func (r record) keyedChoices(questionField string) (question string, choices []string, key string, err error) {
	f, err := r.strFields(questionField, "answerKey")
	if err != nil {
		return "", nil, "", err
	}
	if choices, err = r.choiceTexts("choices"); err != nil {
		return "", nil, "", err
	}
	return f[0], choices, f[1], nil
}
