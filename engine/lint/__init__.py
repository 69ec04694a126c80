"""engine/lint"""
