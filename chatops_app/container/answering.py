"""The question's use cases: the pipeline, answering (for Slack and ``chatops ask``), proposals,
budgets and the rate limit, the answer cache (its version: ``usecases.answer_cache.answer_version``)
and the answers' records."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.home.refresh import Openings, proposal_changed
from bot.settings import SlackSettings
from chatops.store.answers import Answers
from connectors.index.embedding_settings import EmbeddingSettings
from connectors.index.retriever import check_strategy
from connectors.llm.settings import LLMSettings
from connectors.rerank.settings import HttpRerankSettings, RerankSettings, rerank_version
from chatops_app.container.core import once
from usecases.answer_cache import AnswerCache, answer_version
from usecases.answering import Answering
from usecases.ask import Pipeline
from usecases.evidence import RuleOfEmbedder, evidence_version
from usecases.budgets import BudgetGuard, RateLimit
from usecases.proposals import ProposalService

if TYPE_CHECKING:
    from chatops_app.container import Container


class AnsweringParts:
    @once
    def proposals(self: Container) -> ProposalService:
        # With Slack, each change queues a refresh of its approvers' open Home tabs (bot/home/refresh.py).
        slack = bool(self.settings.of(SlackSettings).slack_bot_token)
        return ProposalService(self.store, self.catalogue, identity=self.identity,
                               on_change=proposal_changed(lambda kind, payload: self.dispatch(kind, payload),
                                                          Openings(self.state)) if slack else None)

    def pipeline(self: Container, *, with_slack: bool = True) -> Pipeline:
        s = self.settings
        return Pipeline(identity=self.identity, index=self.index, embedder=self.embedder, llm=self.llm,
                        top_k=s.top_k, candidates=s.candidates, max_members=s.channel_max_members,
                        min_similarity=s.min_similarity, catalogue=self.catalogue,
                        evidence=RuleOfEmbedder(lambda: getattr(self.embedder, "name", None), s.data_dir,
                                                min_similarity=s.min_similarity,
                                                reranker=getattr(self.reranker, "name", None))
                        if s.no_evidence_rule == "calibrated" else None,
                        strategy=check_strategy(s.retrieval), dense_weight=s.dense_weight,
                        directory=self.channel_directory if with_slack else None,
                        withheld=self.withheld if self.sources else None,
                        small_model=s.of(LLMSettings).llm_model_small if self.llm is not None else None,
                        route_min_similarity=s.route_min_similarity, route_margin=s.route_margin,
                        prices=s.prices, budgets=self.budgets, cache=self.answer_cache,
                        toolbox=self.toolbox if s.file.tools else None, tool_max_steps=s.tool_max_steps,
                        tool_timeout=s.tool_timeout, tool_deadline=s.tool_deadline, reranker=self.reranker)

    @once
    def budgets(self: Container) -> BudgetGuard | None:
        guard = BudgetGuard(self.redis, self.settings.key_prefix, self.settings.budgets)
        return guard if guard.active else None

    @once
    def rate_limit(self: Container) -> RateLimit | None:
        per_minute = self.settings.budgets.questions_per_minute
        return RateLimit(self.redis, self.settings.key_prefix, per_minute) if per_minute else None

    @once
    def answer_cache(self: Container) -> AnswerCache | None:
        s = self.settings
        if s.cache_ttl <= 0:
            return None
        return AnswerCache(self.redis, s.key_prefix, ttl=s.cache_ttl, version=self.answer_version, index=self.index)

    @property
    def answer_version(self: Container) -> str:
        """The answer cache's version, from this process's settings and model."""
        s, llm = self.settings, self.settings.of(LLMSettings)
        return answer_version(model=llm.llm_model, small_model=llm.llm_model_small,
                              route_min_similarity=s.route_min_similarity, route_margin=s.route_margin,
                              top_k=s.top_k, candidates=s.candidates, min_similarity=s.min_similarity,
                              retrieval=s.retrieval, dense_weight=s.dense_weight,
                              embedding_model=s.of(EmbeddingSettings).embedding_model,
                              max_tokens=llm.llm_max_tokens, with_model=bool(self.llm),
                              rerank=rerank_version(s.of(RerankSettings), s.of(HttpRerankSettings), llm.llm_model),
                              evidence=evidence_version(s.no_evidence_rule))

    @once
    def answers(self: Container) -> Answers:
        return Answers(self.store)

    @once
    def answering(self: Container) -> Answering:
        return Answering(self.pipeline(), self.store, self.proposals)

    def answering_without_slack(self: Container) -> Answering:
        """For ``chatops ask`` without ``--channel``: no Slack token needed."""
        return Answering(self.pipeline(with_slack=False), self.store, self.proposals)
