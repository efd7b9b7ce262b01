//! Survey: a post-call DTMF survey — questions answered with a key from 1 to 5 — whose answers
//! are stored with the call (and its callback) and exported as CSV (`GET /admin/surveys.csv`).
//! Usually the flow of a survey route point, run on the customer after the agent hangs up.

use schemars::JsonSchema;
use serde::Deserialize;

use super::BlockType;
use super::user_input::{Ask, Asked, ask};
use crate::flow::check::BlockCheck;
use crate::flow::interpreter::{Cx, Step};
use crate::flow::model::{PromptSpec, num};
use crate::flow::survey::{Answer, SurveyResponse, save};

/// One question.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Question {
    /// Its id in the export (letters, digits, `_` and `.`).
    pub id: String,
    /// The question (barge-in allowed).
    #[schemars(length(min = 1))]
    pub prompts: Vec<PromptSpec>,
}

/// A post-call DTMF survey.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Survey {
    /// The survey's name in the export (default: the application's name).
    pub name: Option<String>,
    /// Played once before the first question (no barge-in).
    #[serde(default)]
    pub intro: Vec<PromptSpec>,
    /// The questions, in order (1 to 20).
    #[schemars(length(min = 1, max = 20))]
    pub questions: Vec<Question>,
    /// Played when a key outside 1–5 is pressed, before asking again.
    #[serde(default)]
    pub no_match_prompts: Vec<PromptSpec>,
    /// Played after the last question.
    #[serde(default)]
    pub thanks: Vec<PromptSpec>,
    /// Seconds to wait for a key (1 to 60, default 5).
    #[serde(default = "num::<5>")]
    #[schemars(range(min = 1, max = 60))]
    pub timeout_seconds: u32,
    /// Further attempts per question after no or a wrong key (0 to 9, default 1).
    #[serde(default = "num::<1>")]
    #[schemars(range(min = 0, max = 9))]
    pub retries: u32,
}

impl BlockType for Survey {
    const NEXT: Option<&'static str> = Some("Block to run next.");

    const WAITS: bool = true;

    fn check(&self, c: &mut BlockCheck<'_>) {
        c.prompts("intro", &self.intro);
        c.prompts("no_match_prompts", &self.no_match_prompts);
        c.prompts("thanks", &self.thanks);
        c.range("timeout_seconds", self.timeout_seconds, 1, 60);
        c.range("retries", self.retries, 0, 9);
        if self.questions.is_empty() || self.questions.len() > 20 {
            c.at("questions", "give 1 to 20 questions");
        }
        let list = c.node.get("questions").cloned();
        let mut seen = std::collections::HashSet::new();
        for (i, q) in self.questions.iter().enumerate() {
            let item = list.as_ref().and_then(|l| l.items().get(i).cloned());
            let pos = item
                .as_ref()
                .map(|n| crate::flow::check::value_pos(n, "id"))
                .unwrap_or(c.node.pos);
            let path = format!("{}.questions[{i}].id", c.path);
            c.var_name_at(pos, &path, &q.id);
            if !seen.insert(q.id.as_str()) {
                c.err(pos, &path, format!("question `{}` is asked twice", q.id));
            }
            if q.prompts.is_empty() {
                c.err(pos, &path, "a question needs prompts");
            }
        }
    }

    async fn run(&self, cx: &mut Cx<'_>) -> Step {
        run(self, cx).await
    }
}

async fn run(b: &Survey, cx: &mut Cx<'_>) -> Step {
    // Where the caller was served, read before answers (`survey.<id>`) are set.
    let var = |k: &str| cx.vars.get(k).map(|v| v.to_string()).unwrap_or_default();
    let (queue, agent) = (var("survey.queue"), var("survey.agent"));
    if cx.play(&b.intro, false).await.is_none() {
        return Step::HungUp;
    }
    let accept = |d: &str| matches!(d, "1" | "2" | "3" | "4" | "5");
    let mut answers = Vec::new();
    let mut hung_up = false;
    for q in &b.questions {
        let asked = ask(
            cx,
            Ask {
                no_match: cx.items(&b.no_match_prompts),
                ..Ask::one_key(cx.items(&q.prompts), b.timeout_seconds, b.retries, &accept)
            },
        )
        .await;
        let answer = match asked {
            Asked::Got(d) => d.parse::<u8>().ok(),
            Asked::Failed { .. } => None,
            Asked::HungUp => {
                hung_up = true;
                None
            }
        };
        let text = answer.map(|n| n.to_string()).unwrap_or_default();
        cx.set(&format!("survey.{}", q.id), text);
        answers.push(Answer {
            question: q.id.clone(),
            answer,
        });
        if hung_up {
            break;
        }
    }
    let info = cx.leg.info().clone();
    let response = SurveyResponse {
        id: uuid::Uuid::new_v4(),
        at: cx.services.clock.now(),
        survey: b.name.clone().unwrap_or_else(|| cx.flow.name.clone()),
        call_id: info.call_id,
        ani: info.ani,
        queue,
        agent,
        callback_id: cx.serving.as_ref().map(|s| s.callback),
        answers,
    };
    let given: Vec<String> = response
        .answers
        .iter()
        .map(|a| {
            format!(
                "{}={}",
                a.question,
                a.answer.map(|n| n.to_string()).unwrap_or("-".into())
            )
        })
        .collect();
    match save(cx.services.store.as_ref(), &response).await {
        Ok(()) => cx.outcome(format!("answers {}", given.join(", "))),
        Err(e) => {
            tracing::warn!(error = %e, "survey answers not stored");
            cx.outcome(format!("answers {} (not stored: {e})", given.join(", ")));
        }
    }
    if hung_up {
        return Step::HungUp;
    }
    if cx.play(&b.thanks, false).await.is_none() {
        return Step::HungUp;
    }
    Step::Next
}
